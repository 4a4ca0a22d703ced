# The busybox-based image of the differential tests: every kind of file a test can look at.
FROM im-st-diff/busybox-base
ENV APP_HOME=/opt/app GREETING="hello world"
LABEL org.example.vendor="ACME Incorporated" build-date="2025-01-02T03:04:05.123456" version="1.2.3"
EXPOSE 8080 53/udp
VOLUME ["/data"]
RUN mkdir -p /opt/app/bin /opt/app/conf /opt/app/shared /var/lib/lower/sub \
 && printf 'key=value\nmode=prod\n' > /opt/app/conf/app.conf \
 && printf 'This is licensed under the AGPL-3.0.\n' > /opt/app/conf/agpl.txt \
 && printf '#!/bin/sh\necho app\n' > /opt/app/bin/run && chmod 0750 /opt/app/bin/run \
 && printf 'secret\n' > /opt/app/conf/secret && chmod 0600 /opt/app/conf/secret && chown 1000:2000 /opt/app/conf/secret \
 && cp /bin/busybox /opt/app/bin/suid && chmod 4755 /opt/app/bin/suid \
 && chmod 1777 /opt/app/shared \
 && ln -s conf/app.conf /opt/app/app.conf \
 && ln -s /opt/app/conf /opt/app/etc \
 && ln -s ../conf/app.conf /opt/app/bin/rel.conf \
 && ln /opt/app/conf/app.conf /opt/app/conf/hard.conf \
 && ln -s /nonexistent /opt/app/dangling \
 && echo lower > /var/lib/lower/old && echo sub > /var/lib/lower/sub/file && echo gone > /opt/app/gone \
 && mkfifo -m 0644 /opt/app/fifo
RUN rm /opt/app/gone && rm -rf /var/lib/lower && mkdir -p /var/lib/lower && echo upper > /var/lib/lower/new
WORKDIR /opt/app
USER 1000:2000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo default"]
