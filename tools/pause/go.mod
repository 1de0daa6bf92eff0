module bsls.dev/tools/pause

go 1.25.0
