"""Deciding each document: the pipeline of stages (size, authenticate, adapt, validate, route),
the router, and the parse worker that checks signatures and parses under a budget."""
