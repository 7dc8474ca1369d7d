import hashlib
import pickle
import subprocess

import yaml


def run_report(name):
    return subprocess.run(f"report --name {name}", shell=True, capture_output=True)


def load_session(blob):
    return pickle.loads(blob)


def load_config(text):
    return yaml.load(text)


def fingerprint(password):
    return hashlib.md5(password.encode()).hexdigest()


def calculate(expression):
    return eval(expression)
