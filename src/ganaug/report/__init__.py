"""The report: the papers' tables from the runs' metrics, and the figures a person looks at."""
