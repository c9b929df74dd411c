"""The server's routers owned by deploy: ``health``, ``predict``, ``admin``. The experiments router
lives in :mod:`transferops.abtest.server_ext`, the monitoring router in
:mod:`transferops.monitor.server_ext`; :func:`transferops.deploy.server.create_app` mounts them."""
