"""Small-count protection of published numbers: the cells and relations of results.json
(suppression) and the primary and complementary suppression over them (protect). Used by the
analysis results and the refresh's history page."""
