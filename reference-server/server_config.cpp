// placeholder: the server's configuration loader lands here
