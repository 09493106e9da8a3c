"""HTTP to the hub: kept-alive connections, proxies, TLS, and one share's jobs driven over them."""
