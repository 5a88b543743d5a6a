#!/bin/bash
# devstack/plugin.sh: dispatcher of the multimodal-virt devstack plugin.
# The work lives in devstack/lib/multimodal_virt.

# shellcheck source=devstack/lib/multimodal_virt
source "${MMV_DIR:-$DEST/multimodal-virt}/devstack/lib/multimodal_virt"

case "$1" in
    stack)
        case "$2" in
            install)
                echo_summary "Installing multimodal-virt"
                install_multimodal_virt
                ;;
            post-config)
                echo_summary "Configuring multimodal-virt"
                configure_multimodal_virt
                ;;
            extra)
                echo_summary "Starting multimodal-virt"
                start_multimodal_virt
                ;;
        esac
        ;;
    unstack)
        stop_multimodal_virt
        ;;
    clean)
        cleanup_multimodal_virt
        ;;
esac
