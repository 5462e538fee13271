"""Daily rollups and reports (the Data Pipeline analogue): finished days aggregated into the app database."""
