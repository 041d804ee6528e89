"""The phases of a run, one module each; each returns its results as a JSON-ready dict."""
