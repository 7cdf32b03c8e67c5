-- Landlord plan script: Enterprise / Made to Measure (mysql).

-- Applied once to each new tenant database of this plan; statements run in order.



CREATE TABLE store_settings (
  setting_key VARCHAR(64) PRIMARY KEY,
  setting_value TEXT NOT NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO store_settings (setting_key, setting_value) VALUES
  ('plan', 'Enterprise'),
  ('subscription_type', 'Made to Measure'),
  ('currency', 'USD'),
  ('timezone', 'UTC'),
  ('welcome_message', 'Welcome to your new store; edit this text in Settings > Storefront.');

CREATE TABLE categories (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  slug VARCHAR(80) NOT NULL UNIQUE,
  name VARCHAR(120) NOT NULL,
  position INT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO categories (slug, name, position) VALUES
  ('featured', 'Featured', 1),
  ('new-arrivals', 'New arrivals', 2),
  ('sale', 'On sale', 3);

CREATE TABLE products (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  category_id BIGINT UNSIGNED REFERENCES categories (id),
  sku VARCHAR(64) NOT NULL UNIQUE,
  name VARCHAR(200) NOT NULL,
  description TEXT,
  price DECIMAL(12,2) NOT NULL CHECK (price >= 0),
  active BOOLEAN NOT NULL DEFAULT TRUE,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO products (category_id, sku, name, description, price) VALUES
  (1, 'SAMPLE-001', 'Sample product', 'A product to show how your catalogue looks; delete it when you add your own.', 19.99),
  (2, 'SAMPLE-002', 'Gift card', 'A gift card; it''s redeemable at checkout.', 25.00);

CREATE TABLE customers (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(254) NOT NULL UNIQUE,
  full_name VARCHAR(200),
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE orders (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  customer_id BIGINT UNSIGNED NOT NULL REFERENCES customers (id),
  status VARCHAR(20) NOT NULL DEFAULT 'pending',
  total DECIMAL(12,2) NOT NULL DEFAULT 0,
  placed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE order_items (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  order_id BIGINT UNSIGNED NOT NULL REFERENCES orders (id),
  product_id BIGINT UNSIGNED NOT NULL REFERENCES products (id),
  quantity INT NOT NULL CHECK (quantity > 0),
  unit_price DECIMAL(12,2) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE INDEX orders_by_customer ON orders (customer_id);

-- Professional and above: discount codes and stock tracking.
CREATE TABLE discount_codes (
  code VARCHAR(40) PRIMARY KEY,
  percent_off INT NOT NULL CHECK (percent_off BETWEEN 1 AND 100),
  valid_until DATETIME
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO discount_codes (code, percent_off) VALUES ('WELCOME10', 10);

CREATE TABLE inventory_movements (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  product_id BIGINT UNSIGNED NOT NULL REFERENCES products (id),
  delta INT NOT NULL,
  reason VARCHAR(40) NOT NULL,
  moved_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO inventory_movements (product_id, delta, reason) VALUES (1, 100, 'initial stock'), (2, 1000, 'initial stock');

-- Premium: loyalty points, awarded by the database itself when an order is paid.
CREATE TABLE loyalty_accounts (
  customer_id BIGINT UNSIGNED PRIMARY KEY REFERENCES customers (id),
  points INT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

DELIMITER //
CREATE TRIGGER award_loyalty_points AFTER UPDATE ON orders
FOR EACH ROW
BEGIN
  -- One point per whole currency unit; a ';' inside the body must not end the statement.
  IF NEW.status = 'paid' AND OLD.status <> 'paid' THEN
    INSERT INTO loyalty_accounts (customer_id, points) VALUES (NEW.customer_id, FLOOR(NEW.total))
      ON DUPLICATE KEY UPDATE points = points + FLOOR(NEW.total);
  END IF;
END //
DELIMITER ;

-- Made to Measure: each order line can carry the customer's measurements.
CREATE TABLE measurement_profiles (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  customer_id BIGINT UNSIGNED NOT NULL REFERENCES customers (id),
  label VARCHAR(80) NOT NULL,
  chest_cm DECIMAL(12,2),
  waist_cm DECIMAL(12,2),
  inseam_cm DECIMAL(12,2),
  notes TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE custom_order_specs (
  order_item_id BIGINT UNSIGNED PRIMARY KEY REFERENCES order_items (id),
  measurement_profile_id BIGINT UNSIGNED REFERENCES measurement_profiles (id),
  fabric VARCHAR(80),
  lead_time_days INT NOT NULL DEFAULT 14
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO store_settings (setting_key, setting_value) VALUES ('default_lead_time_days', '14');

-- Enterprise: a record of who changed what in the store, kept by the application.
CREATE TABLE staff_audit (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  staff_email VARCHAR(254) NOT NULL,
  action VARCHAR(80) NOT NULL,
  detail TEXT,
  at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
