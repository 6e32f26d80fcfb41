"""The local explorer behind `vaegen serve`: app.py holds the page's API as
plain functions over a Model and its latent map, server.py the standard
library's HTTP server around it, static/ the page (plain HTML, JS and CSS:
no build step, nothing fetched from elsewhere).

Imported only by `vaegen serve`, so no other command pays for it. Imports
the standard library, numpy and vaegen's torch-free modules.
"""
