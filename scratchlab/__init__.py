"""scratchlab: a terminal lab assistant for building language models from scratch.

Faces: the `scratchlab` REPL and CLI (`scratchlab.cli`). Agent: a LangGraph ReAct hub
(`scratchlab.agent`). Tools: thin LangChain adapters (`scratchlab.tools`). Lab: workspace, registry,
jobs (`scratchlab.lab`). Engines: `scratchlab.models`, `scratchlab.training`, `scratchlab.retrieval`,
`scratchlab.sandbox`, which import nothing from the layers above them.
"""

__version__ = "0.1.0"
