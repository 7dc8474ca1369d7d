"""Order service."""


def total(order):
    # TODO: handle refunds
    return sum(line["price"] for line in order["lines"])


def notify(order):
    # FIXME: retries are missing
    # todo: move the address to settings
    return "billing@example.com"
