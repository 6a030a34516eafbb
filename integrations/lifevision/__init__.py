"""LifeVision SMS/email provider: transport (client), callback signatures and a fake server."""

from integrations.lifevision.client import LifeVisionClient, MessageResult, OutboundMessage
from integrations.lifevision.signatures import SignatureError, sign, verify

__all__ = ["LifeVisionClient", "MessageResult", "OutboundMessage", "SignatureError", "sign", "verify"]
