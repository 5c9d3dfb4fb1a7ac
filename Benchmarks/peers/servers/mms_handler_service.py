"""The handler service multi-model-server loads, as in SageMaker's framework containers: sagemaker-inference's
DefaultHandlerService around a Transformer with the XGBoost inference handler. MMS takes the one class defined in
this module, so the inference handler lives in mms_xgboost_inference.py.
"""

from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.transformer import Transformer

from mms_xgboost_inference import XGBoostInferenceHandler


class HandlerService(DefaultHandlerService):
    def __init__(self):
        super().__init__(transformer=Transformer(default_inference_handler=XGBoostInferenceHandler()))
