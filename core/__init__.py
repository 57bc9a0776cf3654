"""Watchtower core: the domain services shared by the pages, the CLI, the worker and the API."""
