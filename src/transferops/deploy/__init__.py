"""Deploy: ONNX export + int8 with parity gates, a batching REST server, batch scoring."""
