"""Labs in network namespaces: the containerlab runner, and the helpers the tests share."""
