"""Workstation side of the board path: build a flashable arm64 image with edgewatch inside, boot it.

Like ``export/``, nothing here runs on the board. Every step that can run on the host does
(wheel install, module selection, initramfs, file system), because each arm64 program run
under qemu-user costs tens to hundreds of times its native time.
"""
