"""The experiment runs: what params.yaml plans (plan), the real-only baselines (variants), how a run's training set
and phases are built from explicit inputs (training), and the one function that trains a run, reading and writing
its files and logging it to MLflow (run). How a row is named and compared in the report is ganaug.report.rows."""
