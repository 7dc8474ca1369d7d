"""Core maths."""

# A comment line


def add(a, b):
    return a + b


def sub(a, b):
    # subtract
    return a - b
