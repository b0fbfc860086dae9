"""The project's Kedro hooks, one a module: MLflow tracking (``tracking``), the ledger's
reservation of a failed run (``ledger_reservation``), the resume hint (``resume_hint``), wall
time per stage (``stage_timing``), the report of a failed command (``failure_report``) and the
Spark session (``spark_session``); ``stores`` says where MLflow keeps a run."""
