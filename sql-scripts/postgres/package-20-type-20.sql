-- Landlord plan script: Professional / Made to Measure (postgres).

-- Applied once to each new tenant database of this plan; statements run in order, in one transaction.



CREATE TABLE store_settings (
  setting_key VARCHAR(64) PRIMARY KEY,
  setting_value TEXT NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO store_settings (setting_key, setting_value) VALUES
  ('plan', 'Professional'),
  ('subscription_type', 'Made to Measure'),
  ('currency', 'USD'),
  ('timezone', 'UTC'),
  ('welcome_message', 'Welcome to your new store; edit this text in Settings > Storefront.');

CREATE TABLE categories (
  id BIGSERIAL PRIMARY KEY,
  slug VARCHAR(80) NOT NULL UNIQUE,
  name VARCHAR(120) NOT NULL,
  position INT NOT NULL DEFAULT 0
);

INSERT INTO categories (slug, name, position) VALUES
  ('featured', 'Featured', 1),
  ('new-arrivals', 'New arrivals', 2),
  ('sale', 'On sale', 3);

CREATE TABLE products (
  id BIGSERIAL PRIMARY KEY,
  category_id BIGINT REFERENCES categories (id),
  sku VARCHAR(64) NOT NULL UNIQUE,
  name VARCHAR(200) NOT NULL,
  description TEXT,
  price DECIMAL(12,2) NOT NULL CHECK (price >= 0),
  active BOOLEAN NOT NULL DEFAULT TRUE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO products (category_id, sku, name, description, price) VALUES
  (1, 'SAMPLE-001', 'Sample product', 'A product to show how your catalogue looks; delete it when you add your own.', 19.99),
  (2, 'SAMPLE-002', 'Gift card', 'A gift card; it''s redeemable at checkout.', 25.00);

CREATE TABLE customers (
  id BIGSERIAL PRIMARY KEY,
  email VARCHAR(254) NOT NULL UNIQUE,
  full_name VARCHAR(200),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE orders (
  id BIGSERIAL PRIMARY KEY,
  customer_id BIGINT NOT NULL REFERENCES customers (id),
  status VARCHAR(20) NOT NULL DEFAULT 'pending',
  total DECIMAL(12,2) NOT NULL DEFAULT 0,
  placed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE order_items (
  id BIGSERIAL PRIMARY KEY,
  order_id BIGINT NOT NULL REFERENCES orders (id),
  product_id BIGINT NOT NULL REFERENCES products (id),
  quantity INT NOT NULL CHECK (quantity > 0),
  unit_price DECIMAL(12,2) NOT NULL
);

CREATE INDEX orders_by_customer ON orders (customer_id);

-- Professional and above: discount codes and stock tracking.
CREATE TABLE discount_codes (
  code VARCHAR(40) PRIMARY KEY,
  percent_off INT NOT NULL CHECK (percent_off BETWEEN 1 AND 100),
  valid_until TIMESTAMPTZ
);

INSERT INTO discount_codes (code, percent_off) VALUES ('WELCOME10', 10);

CREATE TABLE inventory_movements (
  id BIGSERIAL PRIMARY KEY,
  product_id BIGINT NOT NULL REFERENCES products (id),
  delta INT NOT NULL,
  reason VARCHAR(40) NOT NULL,
  moved_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO inventory_movements (product_id, delta, reason) VALUES (1, 100, 'initial stock'), (2, 1000, 'initial stock');

-- Made to Measure: each order line can carry the customer's measurements.
CREATE TABLE measurement_profiles (
  id BIGSERIAL PRIMARY KEY,
  customer_id BIGINT NOT NULL REFERENCES customers (id),
  label VARCHAR(80) NOT NULL,
  chest_cm DECIMAL(12,2),
  waist_cm DECIMAL(12,2),
  inseam_cm DECIMAL(12,2),
  notes TEXT
);

CREATE TABLE custom_order_specs (
  order_item_id BIGINT PRIMARY KEY REFERENCES order_items (id),
  measurement_profile_id BIGINT REFERENCES measurement_profiles (id),
  fabric VARCHAR(80),
  lead_time_days INT NOT NULL DEFAULT 14
);

INSERT INTO store_settings (setting_key, setting_value) VALUES ('default_lead_time_days', '14');
