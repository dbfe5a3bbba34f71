# reference-server storage: WAV layout, playout alignment, SQLite read-back, concurrency, SIGKILL.
mediasim_test(server_storage_test SOURCES storage_test.cpp LIBS mediasim::server
  nlohmann_json::nlohmann_json TIMEOUT 120)
