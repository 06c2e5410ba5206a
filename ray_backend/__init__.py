"""Ray side of the project: the Serve embedding app (:mod:`ray_backend.serve`) and its parts."""
