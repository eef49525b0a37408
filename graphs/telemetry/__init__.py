"""graphgate's OpenTelemetry spans and metrics: of a graph run and its nodes and tools, of each
model call, of each Redis round trip that reads or writes a checkpoint."""
