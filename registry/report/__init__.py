"""The report stage: results -> index.html and results.json (write), the page's sections
(sections), number formatting (format), Plotly figures (figures/) and the Jinja2 templates
of the report and the refresh's history page (templates/)."""
