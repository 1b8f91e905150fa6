"""Services: the operations the CLI and the web app call."""
