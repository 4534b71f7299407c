"""Pipeline split: a net cut into a client part (Sink layers) and a cloud part (Source layers) over TCP.

- splitter.split_model: where to cut, which layers go where;
- frame, feature_codec: the binary wire format (no pickle) and float32/float16/uint8 features;
- handshake: HMAC challenge-response on a shared secret;
- pipeline_server.PipelineServer / pipeline_client.PipelineClient: the two ends;
- runner: what ``minwa pipeline serve`` and ``minwa pipeline run`` do; planner: ``minwa pipeline plan``.
"""
