"""The API's routers, one per resource: thin adapters from HTTP to the library's use cases."""
