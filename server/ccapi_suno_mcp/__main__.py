from ccapi_suno_mcp.cli import main

main()
