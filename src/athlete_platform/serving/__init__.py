"""The deployment API (layer 7): FastAPI routes over models held in memory and the online store.

`app.create_app` builds the app (v1 routes, Open Inference Protocol v2, session events);
`server.serve` runs it on uvicorn (`athlete-platform serve`). Per request there is no Spark,
no MLflow call and no model load: models are loaded once per version (`models`), the A/B split
is a hash (`variants`), and every prediction is appended to a JSON-lines log by a background
thread (`inference_log`).
"""
