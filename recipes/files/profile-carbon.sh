# The image's environment for login shells (SSH, and terminals of the VNC and RDP
# desktops): /etc/profile sets its own PATH, so what the image's configuration gives
# `docker run` is given here again.
if [ -d /opt/carbon/python/bin ]; then
    case ":$PATH:" in
        *:/opt/carbon/python/bin:*) ;;
        *) PATH="/opt/carbon/python/bin:$PATH" ;;
    esac
    VIRTUAL_ENV=/opt/carbon/python
    export VIRTUAL_ENV
fi
# Node.js from the npm registry comes before everything (docs/npm.md).
if [ -d /opt/carbon/node/bin ]; then
    case ":$PATH:" in
        *:/opt/carbon/node/bin:*) ;;
        *) PATH="/opt/carbon/node/bin:$PATH" ;;
    esac
fi
export PATH
LANG="${LANG:-C.UTF-8}"
export LANG
