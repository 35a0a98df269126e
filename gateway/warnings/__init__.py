"""Port safety early warnings: the lifecycle each warning follows, the book of its steps, and
the scripted scenario of the demo."""
