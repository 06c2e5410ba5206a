"""Task-aware INSTRUCTOR embeddings for LangChain and LlamaIndex, served and scaled with Ray.

Importing this package is light: torch, Ray, LangChain and LlamaIndex load only when the module
that needs them is imported (``instructor_plugins.model``, ``.langchain``, ``.llama_index``).
"""

__version__ = "0.1.0"
