"""The SageMaker container contract around XGBoost, as a Flask app (run by gunicorn).

GET /ping answers 200 once the model is loaded; POST /invocations takes text/csv (one row per line, no header)
and answers one prediction per line in text/csv, as the SageMaker XGBoost container does. The model is the file
named by $MODEL_PATH (XGBoost JSON). Run with OMP_NUM_THREADS=1, like every Python XGBoost server here.
"""

import io
import os

import numpy as np
import xgboost as xgb
from flask import Flask, Response, request

booster = xgb.Booster()
booster.load_model(os.environ["MODEL_PATH"])
app = Flask(__name__)


@app.get("/ping")
def ping():
    return Response(status=200)


@app.post("/invocations")
def invocations():
    if request.mimetype != "text/csv":
        return Response(f"unsupported content type {request.mimetype}\n", status=415)
    rows = np.loadtxt(io.StringIO(request.get_data(as_text=True)), delimiter=",", dtype=np.float32, ndmin=2)
    predictions = booster.inplace_predict(rows)
    return Response("".join(f"{value!r}\n" for value in predictions.tolist()), mimetype="text/csv")
