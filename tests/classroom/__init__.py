"""The class tooling's tests: batches, rosters, exports, clusters (fashion_kit.classroom)."""
