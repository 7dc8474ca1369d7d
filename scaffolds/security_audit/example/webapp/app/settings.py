import os

DEBUG = True
SECRET_KEY = "django-insecure-9f8a7s6d5f4g3h2j1k0lqwertyuiop"
AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite:///db.sqlite3")
