# Builds the Landlord binaries (landlord, landlord-ingress, landlord-worker) into a slim image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins

FROM debian:bookworm-slim
# The database clients give offboarding its dump tools (mariadb-dump, pg_dump). pg_dump refuses a server
# newer than itself: bookworm's is 15, so a PostgreSQL 16+ tenant server needs the newer client (from
# apt.postgresql.org) in this image; offboarding says so when it meets the mismatch.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates mariadb-client postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/landlord /src/target/release/landlord-ingress /src/target/release/landlord-worker /usr/local/bin/
COPY sql-scripts /srv/landlord/sql-scripts
COPY plans.toml /srv/landlord/plans.toml
COPY deploy /srv/landlord/deploy
WORKDIR /srv/landlord
ENV LANDLORD_SCRIPTS=/srv/landlord/sql-scripts LANDLORD_PLANS=/srv/landlord/plans.toml
