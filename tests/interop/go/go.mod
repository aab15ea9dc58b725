module camera-interop

go 1.19
