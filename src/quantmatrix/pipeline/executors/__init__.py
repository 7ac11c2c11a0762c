"""Executors: where the evaluation phase's units of work, (variant, shard), are answered.

``base.py`` the interface and unit types, ``session.py`` one loaded backend answering shards,
``delivery.py`` the driver's single writer, ``local.py`` this process (threads per server
endpoint), ``ray_executor.py`` Ray actors over a cluster, ``registry.py`` name -> factory.
"""
