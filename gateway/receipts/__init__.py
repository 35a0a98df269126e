"""Receipts: the signed answer to each submission, the book of those given, and its index."""
