"""XGBoost for sagemaker-inference's Transformer: the four functions a SageMaker framework container supplies.

The model is `xgboost-model` (XGBoost JSON) in the model directory; requests are text/csv, decoded by
sagemaker-inference's own decoder, and predictions are encoded by its encoder for the Accept type.
"""

import os

import numpy as np
import xgboost as xgb
from sagemaker_inference import decoder, encoder
from sagemaker_inference.default_inference_handler import DefaultInferenceHandler


class XGBoostInferenceHandler(DefaultInferenceHandler):
    def default_model_fn(self, model_dir, context=None):
        booster = xgb.Booster()
        booster.load_model(os.path.join(model_dir, "xgboost-model"))
        return booster

    def default_input_fn(self, input_data, content_type, context=None):
        return decoder.decode(input_data, content_type)

    def default_predict_fn(self, data, model, context=None):
        return model.inplace_predict(np.atleast_2d(data))  # one CSV row decodes to a 1-D array

    def default_output_fn(self, prediction, accept, context=None):
        return encoder.encode(prediction, accept)
