"""Realistic input data for the labelled request suite, generated deterministically.

Every generator writes a folder and returns the facts the checkers need (computed here from
the very rows written, never from harness code), so an expected answer never depends on the
tool it judges.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

REGIONS = ["North", "South", "East", "West"]
PRODUCTS = ["widget", "gizmo", "doohickey"]
PRICES = {"widget": Decimal("2.50"), "gizmo": Decimal("12.99"), "doohickey": Decimal("7.25")}


def _sales_rows(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for day in range(count):
        product = rng.choice(PRODUCTS)
        rows.append(
            {
                "Date": f"2026-{1 + day % 12:02d}-{1 + day % 28:02d}",
                "Region": rng.choice(REGIONS),
                "Product": product,
                "Units": rng.randint(1, 40),
                "Unit Price": PRICES[product],
            }
        )
    return rows


def _sales_facts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    units: dict[str, int] = defaultdict(int)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    price_sum: dict[str, Decimal] = defaultdict(Decimal)
    price_n: Counter[str] = Counter()
    product_units: dict[str, int] = defaultdict(int)
    for row in rows:
        units[row["Region"]] += row["Units"]
        revenue[row["Region"]] += row["Units"] * row["Unit Price"]
        price_sum[row["Product"]] += row["Unit Price"]
        price_n[row["Product"]] += 1
        product_units[row["Product"]] += row["Units"]
    return {
        "rows": len(rows),
        "units_by_region": dict(units),
        "revenue_by_region": {k: float(v) for k, v in revenue.items()},
        "mean_price_by_product": {k: float(price_sum[k] / price_n[k]) for k in price_sum},
        "units_by_product": dict(product_units),
        "months": sorted({r["Date"][:7] for r in rows}),
    }


def sales_comma(root: Path) -> dict[str, Any]:
    """Two quarterly exports, comma-separated UTF-8, spreadsheet-style headers."""
    folder = root / "sales"
    folder.mkdir(parents=True)
    rows = _sales_rows(1, 60)
    for name, part in (("q1.csv", rows[:30]), ("q2.csv", rows[30:])):
        lines = ["Date,Region,Product,Units,Unit Price"]
        lines += [f"{r['Date']},{r['Region']},{r['Product']},{r['Units']},{r['Unit Price']}" for r in part]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"path": folder, **_sales_facts(rows)}


def sales_european(root: Path) -> dict[str, Any]:
    """A European export: semicolons, decimal commas, cp1252 umlauts, a BOM-less header in German."""
    folder = root / "umsatz"
    folder.mkdir(parents=True)
    rows = _sales_rows(2, 40)
    names = {"North": "Nord", "South": "Süd", "East": "Ost", "West": "West"}
    lines = ["Datum;Region;Produkt;Menge;Stückpreis"]
    for r in rows:
        lines.append(
            f"{r['Date']};{names[r['Region']]};{r['Product']};{r['Units']};{str(r['Unit Price']).replace('.', ',')}"
        )
    (folder / "umsatz.csv").write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    facts = _sales_facts([{**r, "Region": names[r["Region"]]} for r in rows])
    return {"path": folder, **facts}


def sales_bom(root: Path) -> dict[str, Any]:
    """One export with a UTF-8 BOM, lower-case headers, an empty file and a broken file beside it."""
    folder = root / "exports"
    folder.mkdir(parents=True)
    rows = _sales_rows(3, 30)
    lines = ["date,region,product,units,unit_price"]
    lines += [f"{r['Date']},{r['Region']},{r['Product']},{r['Units']},{r['Unit Price']}" for r in rows]
    (folder / "sales.csv").write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode("utf-8"))
    (folder / "empty.csv").write_text("", encoding="utf-8")
    (folder / "corrupt.csv").write_bytes(b"\x00\x01\x02\x03 not a table")
    facts = _sales_facts(rows)
    return {"path": folder, **facts}


def orders(root: Path) -> dict[str, Any]:
    """25 orders as one JSON document with nested customers."""
    folder = root / "orders"
    folder.mkdir(parents=True)
    rng = random.Random(4)
    customers = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald"]
    records = []
    for number in range(1, 26):
        records.append(
            {
                "id": number,
                "status": rng.choice(["paid", "open", "refunded"]),
                "total": round(rng.uniform(10, 400), 2),
                "customer": {"name": rng.choice(customers), "country": rng.choice(["DE", "FR", "UK"])},
            }
        )
    (folder / "orders.json").write_text(json.dumps(records, indent=2), encoding="utf-8")
    paid_over_100 = [r for r in records if r["status"] == "paid" and r["total"] > 100]
    return {"path": folder, "records": records, "paid_over_100": paid_over_100}


def access_logs(root: Path) -> dict[str, Any]:
    """An nginx access log in the combined format."""
    folder = root / "nginx"
    folder.mkdir(parents=True)
    rng = random.Random(5)
    ips = ["203.0.113.9", "198.51.100.4", "192.0.2.77", "203.0.113.50", "198.51.100.200"]
    paths = ["/", "/api/orders", "/api/users", "/login", "/static/app.js"]
    statuses = [200, 200, 200, 304, 404, 500, 502]
    lines, status_counts, ip_counts = [], Counter(), Counter()
    for i in range(120):
        ip, path, status = rng.choice(ips), rng.choice(paths), rng.choice(statuses)
        minute = i % 60
        lines.append(
            f'{ip} - - [20/Nov/2026:10:{minute:02d}:{i % 60:02d} +0000] "GET {path} HTTP/1.1" {status} '
            f'{rng.randint(0, 5000)} "-" "Mozilla/5.0"'
        )
        status_counts[str(status)] += 1
        ip_counts[ip] += 1
    (folder / "access.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"path": folder, "lines": len(lines), "status_counts": dict(status_counts), "ip_counts": dict(ip_counts)}


def syslog(root: Path) -> dict[str, Any]:
    """A syslog file (no .log suffix) with sshd failures among ordinary lines."""
    folder = root / "var-log"
    folder.mkdir(parents=True)
    lines = []
    failures = 0
    for i in range(40):
        if i % 4 == 0:
            lines.append(
                f"Nov 20 10:{i:02d}:01 web01 sshd[{1000 + i}]: Failed password for root from 10.0.0.{i} port 22"
            )
            failures += 1
        elif i % 4 == 1:
            lines.append(f"Nov 20 10:{i:02d}:02 web01 CRON[{2000 + i}]: (root) CMD (run-parts /etc/cron.hourly)")
        else:
            lines.append(f"Nov 20 10:{i:02d}:03 web01 systemd[1]: Started Session {i} of user deploy.")
    (folder / "syslog").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"path": folder, "lines": len(lines), "failures": failures}


def json_logs(root: Path) -> dict[str, Any]:
    """An application's JSON-lines log."""
    folder = root / "applogs"
    folder.mkdir(parents=True)
    rng = random.Random(6)
    levels = Counter()
    lines = []
    for i in range(80):
        level = rng.choice(["info", "info", "info", "warning", "error"])
        levels[level.upper()] += 1
        lines.append(json.dumps({"ts": f"2026-11-20T10:{i % 60:02d}:00Z", "level": level, "msg": f"event {i % 7}"}))
    (folder / "app.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"path": folder, "levels": dict(levels)}


def duplicates(root: Path) -> dict[str, Any]:
    """Photos with copies under other names."""
    folder = root / "photos"
    (folder / "2025").mkdir(parents=True)
    (folder / "backup").mkdir()
    contents = {"beach.jpg": b"\xff\xd8beach" * 50, "hill.jpg": b"\xff\xd8hill" * 70, "cat.jpg": b"\xff\xd8cat" * 30}
    for name, body in contents.items():
        (folder / "2025" / name).write_bytes(body)
    (folder / "backup" / "beach copy.jpg").write_bytes(contents["beach.jpg"])
    (folder / "backup" / "beach (2).jpg").write_bytes(contents["beach.jpg"])
    (folder / "hill-final.jpg").write_bytes(contents["hill.jpg"])
    return {"path": folder, "groups": 2, "duplicate_files": 3, "files": 6}


def package(root: Path) -> dict[str, Any]:
    """A small Python package with TODO notes and contact addresses in its docs."""
    folder = root / "inventory"
    (folder / "inventory").mkdir(parents=True)
    (folder / "docs").mkdir()
    (folder / "inventory" / "__init__.py").write_text('"""Inventory."""\n\n__version__ = "0.1.0"\n')
    (folder / "inventory" / "stock.py").write_text(
        "def level(item):\n    # TODO: read from the database\n    return 0\n\n\n"
        "def reorder(item):\n    # FIXME: thresholds are hard-coded\n    return level(item) < 5\n"
    )
    (folder / "inventory" / "cli.py").write_text(
        "import sys\n\n\ndef main():\n    # TODO: argument parsing\n    return 0\n"
    )
    (folder / "docs" / "SUPPORT.md").write_text("Write to support@inventory.example or ops@inventory.example.\n")
    (folder / "README.md").write_text("# inventory\n\nMaintainer: lead@inventory.example\n")
    python_code = 0
    for path in (folder / "inventory").glob("*.py"):
        python_code += sum(
            1 for line in path.read_text().splitlines() if line.strip() and not line.strip().startswith("#")
        )
    return {
        "path": folder,
        "todos": 3,
        "emails": {"support@inventory.example", "ops@inventory.example", "lead@inventory.example"},
        "python_code_lines": python_code,
    }


def downloads(root: Path) -> dict[str, Any]:
    """A downloads folder of mixed file types of known sizes."""
    folder = root / "downloads"
    folder.mkdir(parents=True)
    files = {
        "report.pdf": 30_000,
        "photo.JPG": 52_000,
        "song.mp3": 120_000,
        "notes.txt": 800,
        "data.csv": 4_000,
        "setup.tar.gz": 90_000,
        "README": 300,
    }
    for name, size in files.items():
        (folder / name).write_bytes(hashlib.sha256(name.encode()).digest() * (size // 32) + b"x" * (size % 32))
    largest = sorted(files, key=lambda n: -files[n])
    return {"path": folder, "files": files, "largest": largest}
