"""Ray Train jobs (collaborative filtering, co-purchase, XGBoost re-ranker), evaluation and the
model registry. Built under issue 4; nothing here is wired into serving yet."""
