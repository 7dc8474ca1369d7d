"""Ask the host for an agent's opinion; carry on offline when no agent is available."""

import sys

import harness_runtime as hr


def main() -> int:
    with hr.phase("review"):
        try:
            answer = hr.agent("security-specialist", "Name one risk of running untrusted Python.")
            hr.log(f"agent said: {answer[:200]}")
        except hr.AgentError as exc:
            hr.log(f"no agent available ({exc}); continuing offline", level="warning")
            answer = ""
    hr.result({"answered": bool(answer)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
