"""Small-count protection of published numbers: the cells, relations and complementary
suppression (suppression) and the cells and relations results.json declares (protect). The
analysis results pass through it before the report or results.json sees them."""
