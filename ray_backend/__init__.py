"""Ray shells around the encoder: the Serve app (``ray_backend.serve``) and batch embedding (``ray_backend.batch``)."""
