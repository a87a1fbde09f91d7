"""The operators' web dashboard, served by the API's own FastAPI app (no second server):
Jinja2 templates, one hand-written script and one style sheet, no build step, no CDN."""
