"""Model-driven protocol codecs, one module per AWS protocol (contract in `base.py`).

`codec_for(model)` picks the codec for the protocol a botocore client would use with that model.
`rest-xml` (S3) is not written yet: add it to `CODECS`.
"""

from __future__ import annotations

from botocore.model import ServiceModel

from lamina.api.protocols.base import ProtocolCodec
from lamina.api.protocols.json_ import JsonCodec
from lamina.api.protocols.query import QueryCodec
from lamina.api.protocols.rest_json import RestJsonCodec
from lamina.errors import ConfigError

CODECS: dict[str, type[ProtocolCodec]] = {
    "rest-json": RestJsonCodec,
    "json": JsonCodec,
    "query": QueryCodec,
}


def protocol_of(model: ServiceModel) -> str:
    """The protocol botocore would speak to this service (its `resolved_protocol`)."""
    return model.resolved_protocol


def codec_for(model: ServiceModel) -> ProtocolCodec:
    protocol = protocol_of(model)
    codec = CODECS.get(protocol)
    if codec is None:
        raise ConfigError(
            f"service {model.service_name!r} speaks {protocol!r}, which Lamina has no codec for yet "
            f"(have: {', '.join(sorted(CODECS))})"
        )
    return codec(model)


__all__ = ["CODECS", "ProtocolCodec", "codec_for", "protocol_of"]
