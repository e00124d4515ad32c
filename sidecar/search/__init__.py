"""Search an index a pipeline fills: sparse, BM25, dense, and client-side fused hybrids."""
