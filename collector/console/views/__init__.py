"""One module per page; each view returns (template, values) or a response."""
