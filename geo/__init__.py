"""geo — grid division (网格化管理) for Chinese local governance.

Data flows ``io → partition → db → api → dashboard``; each stage only
imports the ones before it.
"""

__version__ = "0.1.0"
